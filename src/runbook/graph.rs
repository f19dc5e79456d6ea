//! The step graph: run order, cycles, and what each step can rely on having run before it.
//!
//! Everything here is linear in steps plus edges (times the number of variables for
//! [`available`]), so a 20,000-step runbook checks in milliseconds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use fixedbitset::FixedBitSet;

/// Run order (dependencies first, ties broken by file order), or the cycles that prevent one.
pub fn order(needs: &[Vec<usize>]) -> Result<Vec<usize>, Vec<Vec<usize>>> {
    let n = needs.len();
    let mut waiting = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ns) in needs.iter().enumerate() {
        waiting[i] = ns.len();
        for &d in ns {
            dependents[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut out = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        out.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    if out.len() == n {
        Ok(out)
    } else {
        Err(cycles(needs, &waiting))
    }
}

/// Most cycles reported: each is a whole path, and one is enough to start fixing.
const MAX_CYCLES: usize = 10;

/// Finds cycles among the steps Kahn's algorithm could not order. Each cycle is listed
/// from its first step in file order, following `needs` edges, without repeating the start.
fn cycles(needs: &[Vec<usize>], waiting: &[usize]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let n = needs.len();
    let mut mark = vec![Mark::New; n];
    let mut found = Vec::new();
    for start in (0..n).filter(|&i| waiting[i] > 0) {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, next edge index); the stack is the current path.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut edge)) = stack.last_mut() {
            if let Some(&next) = needs[node].get(*edge) {
                *edge += 1;
                match mark[next] {
                    Mark::New => {
                        mark[next] = Mark::OnPath;
                        stack.push((next, 0));
                    }
                    Mark::OnPath => {
                        let from = stack.iter().position(|&(s, _)| s == next).unwrap_or(0);
                        let mut cycle: Vec<usize> = stack[from..].iter().map(|&(s, _)| s).collect();
                        let first = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|&(_, s)| *s)
                            .map_or(0, |(i, _)| i);
                        cycle.rotate_left(first);
                        found.push(cycle);
                        if found.len() == MAX_CYCLES {
                            found.sort();
                            return found;
                        }
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    found.sort();
    found
}

/// For each step, the set of variables provided by steps that always run before it (its
/// ancestors). `provides[i]` lists the variable indices step `i` provides; `k` is how many
/// variables there are. Visits steps in `order`, so each set is the union over its needs.
pub fn available(
    order: &[usize],
    needs: &[Vec<usize>],
    provides: &[Vec<usize>],
    k: usize,
) -> Vec<FixedBitSet> {
    let mut sets = vec![FixedBitSet::new(); needs.len()];
    if k == 0 {
        return sets;
    }
    for &i in order {
        let mut set = FixedBitSet::with_capacity(k);
        for &d in &needs[i] {
            set.union_with(&sets[d]);
            for &v in &provides[d] {
                set.insert(v);
            }
        }
        sets[i] = set;
    }
    sets
}

/// Every ancestor of `step` (the steps it transitively needs), in no particular order.
pub fn ancestors(needs: &[Vec<usize>], step: usize) -> Vec<usize> {
    let mut seen = FixedBitSet::with_capacity(needs.len());
    let mut stack = vec![step];
    let mut out = Vec::new();
    while let Some(s) = stack.pop() {
        for &d in &needs[s] {
            if !seen.put(d) {
                out.push(d);
                stack.push(d);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_dependencies_then_file_order() {
        let needs = vec![vec![], vec![], vec![0, 1], vec![0]];
        assert_eq!(order(&needs), Ok(vec![0, 1, 2, 3]));
        let needs = vec![vec![1], vec![]];
        assert_eq!(order(&needs), Ok(vec![1, 0]));
    }

    #[test]
    fn names_cycles_in_edge_order() {
        let needs = vec![vec![], vec![2], vec![3], vec![1], vec![4]];
        assert_eq!(order(&needs), Err(vec![vec![1, 2, 3], vec![4]]));
    }

    #[test]
    fn parallel_branches_do_not_provide() {
        // 0 -> 1, 0 -> 2: step 1's capture is not available in step 2.
        let needs = vec![vec![], vec![0], vec![0], vec![1, 2]];
        let provides = vec![vec![], vec![0], vec![], vec![]];
        let sets = available(&[0, 1, 2, 3], &needs, &provides, 1);
        assert!(!sets[2].contains(0));
        assert!(sets[3].contains(0));
    }
}

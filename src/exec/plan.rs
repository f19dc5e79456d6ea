//! The step graph as a run walks it, computed once from the validated runbook: what each
//! step needs, what waits for it, and the ancestors a `--start-at` passes over.

use crate::runbook::Runbook;
use crate::runbook::graph;

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    needs: Vec<Vec<usize>>,
    dependents: Vec<Vec<usize>>,
}

impl Plan {
    pub(crate) fn new(rb: &Runbook) -> Self {
        Self::from_needs(rb.steps.iter().map(|s| s.need_indices.clone()).collect())
    }

    pub(crate) fn from_needs(needs: Vec<Vec<usize>>) -> Self {
        let mut dependents = vec![Vec::new(); needs.len()];
        for (i, ns) in needs.iter().enumerate() {
            for &d in ns {
                dependents[d].push(i);
            }
        }
        Plan { needs, dependents }
    }

    pub(crate) fn len(&self) -> usize {
        self.needs.len()
    }

    pub(crate) fn needs(&self, i: usize) -> &[usize] {
        &self.needs[i]
    }

    pub(crate) fn dependents(&self, i: usize) -> &[usize] {
        &self.dependents[i]
    }

    /// Step `i` and every step that transitively needs it, in file order.
    pub(crate) fn descendants(&self, i: usize) -> Vec<usize> {
        let mut out = graph::ancestors(&self.dependents, i);
        out.push(i);
        out.sort_unstable();
        out
    }

    /// Every step `i` transitively needs, in file order.
    pub(crate) fn ancestors(&self, i: usize) -> Vec<usize> {
        let mut out = graph::ancestors(&self.needs, i);
        out.sort_unstable();
        out
    }
}

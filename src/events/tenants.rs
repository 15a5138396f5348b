//! Which tenants (call centers and VDNs) a deployment keeps. A large operator runs several
//! deployments on the same topic, each keeping its own tenants, so no replica pays memory for
//! every tenant (docs/operations.md, "Scaling out").

use super::ids::TaskKey;

/// Empty lists keep everything; otherwise a task is kept when its call center is listed (or no
/// call center is) and its VDN is listed (or no VDN is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantFilter {
    cc_ids: Vec<u16>,
    vdns: Vec<u16>,
}

impl TenantFilter {
    pub fn new(cc_ids: &[u16], vdns: &[u16]) -> Self {
        let sorted = |ids: &[u16]| {
            let mut v = ids.to_vec();
            v.sort_unstable();
            v.dedup();
            v
        };
        TenantFilter {
            cc_ids: sorted(cc_ids),
            vdns: sorted(vdns),
        }
    }

    /// Keeps everything.
    pub fn all() -> Self {
        Self::default()
    }

    pub fn keeps(&self, cc_id: u16, vdn: u16) -> bool {
        (self.cc_ids.is_empty() || self.cc_ids.binary_search(&cc_id).is_ok())
            && (self.vdns.is_empty() || self.vdns.binary_search(&vdn).is_ok())
    }

    pub fn keeps_task(&self, task: &TaskKey) -> bool {
        self.keeps(task.cc_id, task.vdn)
    }

    pub fn keeps_everything(&self) -> bool {
        self.cc_ids.is_empty() && self.vdns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_lists_keep_everything_and_lists_combine() {
        assert!(TenantFilter::all().keeps(7, 9));
        let f = TenantFilter::new(&[1, 2], &[]);
        assert!(f.keeps(2, 4000) && !f.keeps(3, 1));
        let f = TenantFilter::new(&[], &[92, 93]);
        assert!(f.keeps(65535, 93) && !f.keeps(1, 94));
        let f = TenantFilter::new(&[1], &[92]);
        assert!(f.keeps(1, 92) && !f.keeps(1, 93) && !f.keeps(2, 92));
        assert!(!f.keeps_everything());
    }
}

//! Branch network interfaces per instance type: what security groups for
//! pods can give pods (`vpc.amazonaws.com/pod-eni`). EC2 has no API for
//! them, so the table is data (`catalog/data/pod-eni-branch-interfaces.csv`,
//! whose header says where it comes from); a type not in it is not
//! trunking-compatible and offers none.

use std::collections::BTreeMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("../data/pod-eni-branch-interfaces.csv");

fn table() -> &'static BTreeMap<&'static str, u32> {
    static PARSED: OnceLock<BTreeMap<&'static str, u32>> = OnceLock::new();
    PARSED.get_or_init(|| {
        TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("instance_type,"))
            .filter_map(|l| {
                let (name, count) = l.split_once(',')?;
                Some((name, count.trim().parse().ok()?))
            })
            .collect()
    })
}

/// The branch interfaces of `instance_type` (0 when it cannot trunk).
pub fn branch_interfaces(instance_type: &str) -> u32 {
    table().get(instance_type).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn trunking_types_have_branch_interfaces_and_others_none() {
        assert_eq!(super::branch_interfaces("m5.large"), 9);
        assert_eq!(super::branch_interfaces("c5.xlarge"), 18);
        assert_eq!(
            super::branch_interfaces("t2.micro"),
            0,
            "xen types cannot trunk"
        );
        assert!(super::table().len() > 1000);
    }
}

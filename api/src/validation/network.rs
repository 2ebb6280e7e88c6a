//! EC2NodeClass network and placement settings: network interfaces, IP
//! prefixes, connection tracking, the placement group and CPU options.

use super::{Errors, FieldPath};
use crate::v1::{ConnectionTracking, EC2NodeClassSpec, NetworkInterface, PlacementGroupSelector};

/// Checks the network and placement fields of an EC2NodeClass spec.
pub(crate) fn check(errors: &mut Errors, spec: &FieldPath, s: &EC2NodeClassSpec) {
    if let Some(interfaces) = &s.network_interfaces {
        network_interfaces(errors, &spec.child("networkInterfaces"), interfaces);
    }
    if let Some(count) = s.ip_prefix_count {
        errors.check(
            count >= 0,
            &spec.child("ipPrefixCount"),
            format!("must not be negative (got {count})"),
        );
    }
    if let Some(tracking) = &s.connection_tracking {
        connection_tracking(errors, &spec.child("connectionTracking"), tracking);
    }
    if let Some(selector) = &s.placement_group_selector {
        placement_group(errors, &spec.child("placementGroupSelector"), selector);
    }
    if let Some(nested) = s
        .cpu_options
        .as_ref()
        .and_then(|c| c.nested_virtualization.as_ref())
    {
        errors.check(
            matches!(nested.as_str(), "enabled" | "disabled"),
            &spec.child("cpuOptions").child("nestedVirtualization"),
            format!("must be one of enabled, disabled (got {nested:?})"),
        );
    }
}

fn network_interfaces(errors: &mut Errors, path: &FieldPath, interfaces: &[NetworkInterface]) {
    errors.check(
        interfaces.len() <= 150,
        path,
        format!("must have at most 150 items (got {})", interfaces.len()),
    );
    let primary = interfaces.iter().any(|n| {
        n.device_index == 0 && n.network_card_index == 0 && n.interface_type == "interface"
    });
    errors.check(
        interfaces.is_empty() || primary,
        path,
        "networkInterfaces must include a primary interface with interfaceType='interface'",
    );
    let unique = interfaces.iter().all(|x| {
        let same_slot = interfaces
            .iter()
            .filter(|y| {
                x.network_card_index == y.network_card_index && x.device_index == y.device_index
            })
            .count();
        let efa_on_card = interfaces
            .iter()
            .filter(|y| {
                x.network_card_index == y.network_card_index && y.interface_type == "efa-only"
            })
            .count();
        same_slot == 1 && (x.interface_type != "efa-only" || efa_on_card == 1)
    });
    errors.check(
        unique,
        path,
        "networkInterfaces must not have duplicate networkCardIndex and deviceIndex pairs, and can have at most one efa device per network card",
    );
    for (i, n) in interfaces.iter().enumerate() {
        let p = path.index(i);
        errors.check(
            matches!(n.interface_type.as_str(), "interface" | "efa-only"),
            &p.child("interfaceType"),
            format!(
                "must be one of interface, efa-only (got {:?})",
                n.interface_type
            ),
        );
        for (field, value) in [
            ("networkCardIndex", n.network_card_index),
            ("deviceIndex", n.device_index),
        ] {
            errors.check(
                value >= 0,
                &p.child(field),
                format!("must not be negative (got {value})"),
            );
        }
    }
}

fn connection_tracking(errors: &mut Errors, path: &FieldPath, t: &ConnectionTracking) {
    let fields = [
        (
            "tcpEstablishedTimeout",
            t.tcp_established_timeout,
            60,
            432_000,
        ),
        ("udpStreamTimeout", t.udp_stream_timeout, 60, 180),
        ("udpTimeout", t.udp_timeout, 30, 60),
    ];
    errors.check(
        fields.iter().any(|(_, v, _, _)| v.is_some()),
        path,
        "at least one of tcpEstablishedTimeout, udpStreamTimeout, or udpTimeout must be set",
    );
    for (field, value, min, max) in fields {
        if let Some(v) = value {
            errors.check(
                (min..=max).contains(&v),
                &path.child(field),
                format!("must be between {min} and {max} seconds (got {v})"),
            );
        }
    }
}

fn placement_group(errors: &mut Errors, path: &FieldPath, p: &PlacementGroupSelector) {
    errors.check(
        p.name.is_some() || p.id.is_some(),
        path,
        "expected at least one, got none, ['name', 'id']",
    );
    errors.check(
        !(p.name.is_some() && p.id.is_some()),
        path,
        "'name' and 'id' are mutually exclusive",
    );
    if let Some(name) = &p.name {
        errors.check(!name.is_empty(), &path.child("name"), "must not be empty");
    }
    super::ec2nodeclass::aws_id(errors, &path.child("id"), p.id.as_deref(), "pg-");
}

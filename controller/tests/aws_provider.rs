//! The EC2 provider against moto: NodeClass discovery, launch templates,
//! instance profiles, garbage collection, and (through the fault proxy, see
//! `aws_support/proxy.rs`) throttling and denied calls.

mod aws_support;

use aws_support::AwsEnv;

#[tokio::test]
async fn discovers_subnets_security_groups_amis_and_the_instance_profile() {
    let Some(env) =
        AwsEnv::start("discovers_subnets_security_groups_amis_and_the_instance_profile").await
    else {
        return;
    };
    let status = env.class.status.clone().unwrap();
    let conditions: Vec<(String, String, String)> = status
        .conditions
        .iter()
        .flatten()
        .map(|c| (c.type_.clone(), c.status.clone(), c.message.clone()))
        .collect();
    eprintln!("{conditions:#?}");
    assert!(conditions.iter().all(|c| c.1 == "True"), "{conditions:?}");
}

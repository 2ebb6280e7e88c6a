//! What the instances do when they start: each running instance of the
//! cluster's NodePools reads the user data EC2 holds for it with its AMI
//! family's agent (`karpenter_sim::boot`) and registers the Node it
//! describes. An instance whose user data would not join is recorded, and
//! the journey fails on it.

use aws_sdk_ec2::types::Filter;
use k8s_openapi::api::core::v1::Node;
use karpenter_api::v1::EC2NodeClass;
use karpenter_sim::boot::ClusterIdentity;
use karpenter_sim::boot::ec2::{LaunchedInstance, boot_instance};
use kube::Api;
use kube::api::PostParams;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The running agent loop; stops when dropped.
pub struct NodeAgents {
    task: tokio::task::JoinHandle<()>,
    failures: Arc<Mutex<Vec<String>>>,
    booted: Arc<Mutex<HashSet<String>>>,
}

impl Drop for NodeAgents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NodeAgents {
    /// Starts booting the cluster's instances as they appear.
    pub fn start(ec2: aws_sdk_ec2::Client, client: kube::Client, cluster: ClusterIdentity) -> Self {
        let failures = Arc::new(Mutex::new(Vec::new()));
        let booted = Arc::new(Mutex::new(HashSet::new()));
        let task = tokio::spawn(run(ec2, client, cluster, failures.clone(), booted.clone()));
        NodeAgents {
            task,
            failures,
            booted,
        }
    }

    /// Instances that did not join, and why.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }

    /// How many instances have booted so far.
    pub fn booted(&self) -> usize {
        self.booted.lock().unwrap().len()
    }
}

async fn run(
    ec2: aws_sdk_ec2::Client,
    client: kube::Client,
    cluster: ClusterIdentity,
    failures: Arc<Mutex<Vec<String>>>,
    booted: Arc<Mutex<HashSet<String>>>,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let classes: Api<EC2NodeClass> = Api::all(client);
    loop {
        for (instance, class_name) in running(&ec2).await {
            if booted.lock().unwrap().contains(&instance.id) {
                continue;
            }
            let Ok(Some(class)) = classes.get_opt(&class_name).await else {
                failures.lock().unwrap().push(format!(
                    "{}: its EC2NodeClass {class_name} is not in the cluster",
                    instance.id
                ));
                booted.lock().unwrap().insert(instance.id);
                continue;
            };
            match boot_instance(&ec2, &instance, &class, &cluster).await {
                Ok(node) => match nodes.create(&PostParams::default(), &node).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => failures
                        .lock()
                        .unwrap()
                        .push(format!("{}: registering its Node: {e}", instance.id)),
                },
                Err(e) => failures
                    .lock()
                    .unwrap()
                    .push(format!("{} does not join: {e}", instance.id)),
            }
            booted.lock().unwrap().insert(instance.id);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Running instances Karpenter launched, with their EC2NodeClass's name.
async fn running(ec2: &aws_sdk_ec2::Client) -> Vec<(LaunchedInstance, String)> {
    let Ok(out) = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag-key")
                .values("karpenter.sh/nodepool")
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .build(),
        )
        .send()
        .await
    else {
        return Vec::new();
    };
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| {
            let class = i
                .tags()
                .iter()
                .find(|t| t.key() == Some("karpenter.k8s.aws/ec2nodeclass"))
                .and_then(|t| t.value())?
                .to_string();
            Some((
                LaunchedInstance {
                    id: i.instance_id()?.to_string(),
                    instance_type: i.instance_type()?.as_str().to_string(),
                    zone: i.placement()?.availability_zone()?.to_string(),
                    region: crate::account::REGION.into(),
                },
                class,
            ))
        })
        .collect()
}

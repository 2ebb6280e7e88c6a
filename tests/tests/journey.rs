//! A platform team's journey, with the real binaries, on moto and kubesim
//! served over TLS, once per Terraform version (1.15 and 1.0.3):
//!
//! 1. `terraform init` installs the provider from the packaged release
//!    (`scripts/package-provider`, a filesystem mirror; no `dev_overrides`)
//!    and `terraform apply` of `terraform/karpenter` makes the node and
//!    controller roles, the EC2NodeClass and two NodePools;
//! 2. `karpenter-bootstrap apply --from-terraform` makes the queue, its
//!    rules, the access entry, the Pod Identity association, the CRDs and
//!    the Helm release;
//! 3. `karpenter-controller` starts as the release's Deployment runs it
//!    (command, environment and service account from the rendered
//!    Deployment, in-cluster configuration), on AWS (moto) under the
//!    controller role's credentials, every call it signs evaluated at the
//!    end against the policies Terraform gave that role (moto authorizes
//!    nothing; `karpenter_e2e::iam`);
//! 4. a GitOps NodePool and pods of three shapes arrive by kubectl; the pods
//!    run on nodes that booted from the user data EC2 holds;
//! 5. a spot interruption goes EventBridge `PutEvents` -> the bootstrap's
//!    rule -> its queue; the node is drained within web's PDB and replaced;
//! 6. scale-in removes nodes; a change of a `karpenter_nodepool` in
//!    Terraform rolls that pool's nodes by drift;
//! 7. `karpenter-bootstrap destroy`, then `terraform destroy`: nothing the
//!    journey made is left in moto or kubesim, and Helm lists no release.
//!
//! Each step prints what it did and how long it took; a failure names the
//! step and the program.
//!
//! What stands in for AWS and EKS: moto (its EKS answers DescribeCluster;
//! the labelled fake beside it answers access entries and Pod Identity),
//! `sts:AssumeRole` for Pod Identity's credential exchange, the simulated
//! boot for the node agents, kubesim's token for the service account's.
//! `settings.isolatedVPC` is on because moto has no Pricing API.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use karpenter_api::v1::{EC2NodeClass, NodeClaim};
use karpenter_e2e::account::Account;
use karpenter_e2e::cluster::Cluster;
use karpenter_e2e::nodes::NodeAgents;
use karpenter_e2e::terraform::{Config, Workspace};
use karpenter_e2e::{Steps, binaries, say, workload};
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use test_support::command::run_checked;
use test_support::pod::start_in_cluster;
use test_support::provider_package::ProviderPackage;
use test_support::{DevEnv, MotoServer, Part, eventually_within};
use tokio::task::block_in_place;

const CLUSTER: &str = "journey";
/// One journey at a time: each runs moto, kubesim, Terraform and the
/// controller, and two at once would only slow each other on CI's 2 cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_journey_with_terraform_1_15() {
    journey("1.15", Part::Terraform1_15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_journey_with_terraform_1_0_3() {
    journey("1.0.3", Part::Terraform1_0).await;
}

/// Runs `binary ARGS...` with `env`; panics naming the program when it fails.
fn run(program: &str, binary: &Path, args: &[&str], env: &[(String, String)]) -> String {
    run_checked(
        program,
        Command::new(binary).args(args).envs(env.iter().cloned()),
    )
}

/// Pods Running (and not being deleted), by their `app` label.
async fn running_by_app(pods: &Api<Pod>) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for pod in pods.list(&ListParams::default()).await.unwrap().items {
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if running && pod.metadata.deletion_timestamp.is_none() {
            let app = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .cloned()
                .unwrap_or_default();
            *out.entry(app).or_default() += 1;
        }
    }
    out
}

/// NodeClaims by NodePool.
async fn claims_by_pool(claims: &Api<NodeClaim>) -> BTreeMap<String, Vec<NodeClaim>> {
    let mut out: BTreeMap<String, Vec<NodeClaim>> = BTreeMap::new();
    for claim in claims.list(&ListParams::default()).await.unwrap().items {
        let pool = claim
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("karpenter.sh/nodepool"))
            .cloned()
            .unwrap_or_default();
        out.entry(pool).or_default().push(claim);
    }
    out
}

fn instance_id(claim: &NodeClaim) -> Option<String> {
    claim
        .status
        .as_ref()?
        .provider_id
        .as_deref()?
        .rsplit('/')
        .next()
        .map(str::to_string)
}

/// The state of every instance moto holds, by id.
async fn instance_states(ec2: &aws_sdk_ec2::Client) -> BTreeMap<String, String> {
    let out = ec2.describe_instances().send().await.unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| {
            Some((
                i.instance_id()?.to_string(),
                i.state()?.name()?.as_str().to_string(),
            ))
        })
        .collect()
}

async fn journey(version: &str, part: Part) {
    let env = DevEnv::load();
    let test = format!("journey (Terraform {version})");
    let (Some(terraform), Some(_), Some(helm), Some(kubectl), Some(simulator)) = (
        env.require(part, &test),
        env.require(Part::MotoServer, &test),
        env.require(Part::HelmPython, &test),
        env.require(Part::Kubectl, &test),
        env.require(Part::IamSimulate, &test),
    ) else {
        return;
    };
    let _alone = ONE_AT_A_TIME.lock().await;
    say(&format!("== the journey with Terraform {version}"));
    let dir = std::env::temp_dir().join(format!(
        "karpenter-journey-{}-{}",
        version.replace('.', "-"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Kept when the journey fails: the controller's log is controller/output.log.
    say(&format!("   working directory: {}", dir.display()));
    let mut steps = Steps::default();

    let bins = block_in_place(binaries);
    steps.done("cargo", "built the three binaries");
    let package = block_in_place(|| ProviderPackage::build(&bins.provider, &dir.join("dist")));
    steps.done("package-provider", &format!("packaged {}", package.archive));
    let account = Account::seed(
        MotoServer::start_logging(&env).expect("moto starts"),
        CLUSTER,
    )
    .await;
    let cluster = Cluster::start(&dir).await;
    let ec2 = aws_sdk_ec2::Client::new(&account.config);
    steps.done(
        "moto, kubesim",
        "the account (VPC, 3 subnets, security group, EKS cluster) and the control plane over TLS",
    );

    // 1. Terraform: the provider from the package, the module applied.
    let tf = Workspace::new(&terraform, &dir.join("terraform"), &package);
    let kubeconfig = cluster.kubeconfig();
    let mut config = Config {
        version: &package.version,
        kubeconfig: &kubeconfig,
        aws_endpoint: &account.endpoint,
        cluster_name: CLUSTER,
        image_id: &account.image_id,
        generation: 1,
    };
    tf.write(&config);
    block_in_place(|| tf.run(&["init", "-input=false"]));
    let lock = std::fs::read_to_string(tf.dir.join(".terraform.lock.hcl")).expect("a lock file");
    assert!(
        lock.contains(&package.h1),
        "terraform init: the lock file lacks {}:\n{lock}",
        package.h1
    );
    steps.done(
        "terraform init",
        "installed the provider from the filesystem mirror, locked its h1 hash",
    );
    // The roles first: the bootstrap's access entry and Pod Identity
    // association need them, and the NodePools need the CRDs it installs.
    // (A real API server refuses an EC2NodeClass before its CRD exists.)
    block_in_place(|| {
        tf.run(&[
            "apply",
            "-target=module.karpenter.karpenter_node_role.this",
            "-target=module.karpenter.karpenter_controller_role.this",
        ])
    });
    let outputs: Value =
        serde_json::from_str(&block_in_place(|| tf.run(&["output", "-json"]))).unwrap();
    let controller_role = outputs["iam_role_arn"]["value"]
        .as_str()
        .expect("the controller role")
        .to_string();
    let node_role = format!(
        "arn:aws:iam::{}:role/{}",
        karpenter_e2e::account::ACCOUNT_ID,
        outputs["node_role_name"]["value"]
            .as_str()
            .expect("the node role")
    );
    steps.done("terraform apply", "the node and controller roles");

    // 2. The bootstrap, from Terraform's outputs.
    let values = dir.join("values.yaml");
    std::fs::write(
        &values,
        json!({
            "replicas": 1,
            "logLevel": "info",
            "settings": {"isolatedVPC": true},
            "controller": {
                "metrics": {"port": test_support::free_port()},
                "healthProbe": {"port": test_support::free_port()},
                "env": [{"name": "DISRUPTION_POLL_INTERVAL", "value": "1s"}],
            },
        })
        .to_string(),
    )
    .unwrap();
    let mut bootstrap_env = tf.env();
    bootstrap_env.extend(
        [
            ("KUBECONFIG", kubeconfig.display().to_string()),
            ("AWS_REGION", karpenter_e2e::account::REGION.to_string()),
            ("AWS_ENDPOINT_URL", account.endpoint.clone()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let tf_dir = tf.dir.display().to_string();
    let terraform_arg = terraform.display().to_string();
    // The cluster's name as a flag: a targeted apply leaves the constant
    // outputs unwritten; the roles come from Terraform's outputs.
    let target = [
        "--cluster-name",
        CLUSTER,
        "--from-terraform",
        tf_dir.as_str(),
        "--terraform",
        terraform_arg.as_str(),
    ];
    let values_arg = values.display().to_string();
    let applied = block_in_place(|| {
        let mut args = vec!["apply"];
        args.extend(target);
        args.extend(["--values", values_arg.as_str(), "--wait-timeout", "2m"]);
        run(
            "karpenter-bootstrap",
            &bins.bootstrap,
            &args,
            &bootstrap_env,
        )
    });
    let made = applied.lines().filter(|l| l.starts_with("+ ")).count();
    steps.done(
        "karpenter-bootstrap",
        &format!("apply: {made} resources made (queue, rules, access entry, Pod Identity, CRDs, Helm release)"),
    );

    block_in_place(|| tf.run(&["apply"]));
    steps.done(
        "terraform apply",
        "EC2NodeClass default, NodePools general and batch",
    );

    // 3. The controller, as the release's Deployment runs it.
    let client = cluster.client();
    let deployment = Api::<Deployment>::namespaced(client.clone(), "kube-system")
        .get("karpenter")
        .await
        .expect("karpenter-bootstrap: the release has no Deployment karpenter");
    let system_pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let pod_name = system_pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=karpenter"))
        .await
        .unwrap()
        .items
        .into_iter()
        .find_map(|p| p.metadata.name)
        .expect("kubesim runs the release's pod");
    let credentials = account.role_credentials(&controller_role).await;
    let controller = start_in_cluster(
        &bins.controller,
        &deployment,
        &pod_name,
        cluster.served.address,
        &cluster.service_account("kube-system"),
        &dir.join("controller"),
        &credentials,
        true,
    );
    let classes: Api<EC2NodeClass> = Api::all(client.clone());
    eventually_within(
        Duration::from_secs(60),
        "karpenter-controller: EC2NodeClass default Ready",
        || async {
            classes
                .get_opt("default")
                .await
                .ok()
                .flatten()
                .is_some_and(|c| {
                    c.status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
        },
    )
    .await;
    steps.done(
        "karpenter-controller",
        &format!("started as pod {pod_name} under {controller_role}; EC2NodeClass default Ready"),
    );

    // 4. GitOps NodePool and workloads by kubectl; nodes boot from user data.
    let agents = NodeAgents::start(ec2.clone(), client.clone(), account.cluster.clone());
    let manifests = dir.join("apps.yaml");
    std::fs::write(&manifests, workload::manifests()).unwrap();
    let manifests_arg = manifests.display().to_string();
    block_in_place(|| cluster.kubectl(&kubectl, &["apply", "-f", &manifests_arg]));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let want: BTreeMap<String, u32> = workload::SHAPES
        .iter()
        .map(|s| (s.name.to_string(), s.replicas))
        .collect();
    eventually_within(
        Duration::from_secs(180),
        "karpenter-controller: every pod Running on a booted node",
        || async {
            assert!(
                agents.failures().is_empty(),
                "nodes: {:?}",
                agents.failures()
            );
            running_by_app(&pods).await == want
        },
    )
    .await;
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let pools = claims_by_pool(&claims).await;
    let per_pool: Vec<String> = pools
        .iter()
        .map(|(p, c)| format!("{p} {}", c.len()))
        .collect();
    steps.done(
        "kubectl, karpenter-controller",
        &format!(
            "{} pods Running on {} booted nodes ({})",
            workload::total_replicas(),
            agents.booted(),
            per_pool.join(", ")
        ),
    );

    // 5. A spot interruption, sent the way EC2 sends it.
    let victim = pools
        .get("general")
        .into_iter()
        .flatten()
        .find(|c| {
            c.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("karpenter.sh/capacity-type"))
                == Some(&"spot".to_string())
        })
        .cloned()
        .expect("karpenter-controller: the general pool launched no spot capacity");
    let victim_name = victim.metadata.name.clone().unwrap();
    let victim_id = instance_id(&victim).expect("the victim's instance");
    let events = aws_sdk_eventbridge::Client::new(&account.config);
    let put = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("aws.ec2")
                .detail_type("EC2 Spot Instance Interruption Warning")
                .resources(format!(
                    "arn:aws:ec2:us-east-1:123456789012:instance/{victim_id}"
                ))
                .detail(
                    json!({"instance-id": victim_id, "instance-action": "terminate"}).to_string(),
                )
                .build(),
        )
        .send()
        .await
        .expect("PutEvents");
    assert_eq!(put.failed_entry_count(), 0, "EventBridge refused the event");
    let web_replicas = want["web"];
    let fewest_web = std::sync::Mutex::new(web_replicas);
    // The drain is paced by web's PDB and the eviction back-off (up to 15 s
    // a pod while a replacement starts): about 80 s for 8 pods.
    eventually_within(
        Duration::from_secs(180),
        "karpenter-controller: the interrupted node drained, terminated and its pods Running elsewhere",
        || async {
            let running = running_by_app(&pods).await;
            let web = running.get("web").copied().unwrap_or_default();
            {
                let mut fewest = fewest_web.lock().unwrap();
                *fewest = (*fewest).min(web);
            }
            let gone = claims.get_opt(&victim_name).await.ok().flatten().is_none();
            let terminated = matches!(
                instance_states(&ec2).await.get(&victim_id).map(String::as_str),
                Some("terminated" | "shutting-down")
            );
            gone && terminated && running == want
        },
    )
    .await;
    let fewest = *fewest_web.lock().unwrap();
    assert!(
        fewest + workload::WEB_MAX_UNAVAILABLE >= web_replicas,
        "the drain broke web's PDB: {fewest} of {web_replicas} web pods were Running at one point"
    );
    steps.done(
        "EventBridge -> SQS -> karpenter-controller",
        &format!("spot interruption of {victim_id}: drained (web never below {fewest}/{web_replicas}), terminated, replaced"),
    );

    // 6a. Scale-in.
    let before: usize = claims_by_pool(&claims).await.values().map(Vec::len).sum();
    block_in_place(|| {
        cluster.kubectl(&kubectl, &["scale", "deployment/web", "--replicas=2"]);
        cluster.kubectl(&kubectl, &["scale", "deployment/cache", "--replicas=0"]);
    });
    eventually_within(
        Duration::from_secs(120),
        "karpenter-controller: the gitops pool emptied and fewer nodes overall",
        || async {
            let pools = claims_by_pool(&claims).await;
            let total: usize = pools.values().map(Vec::len).sum();
            pools.get("gitops").is_none_or(Vec::is_empty) && total < before
        },
    )
    .await;
    let after: usize = claims_by_pool(&claims).await.values().map(Vec::len).sum();
    steps.done(
        "karpenter-controller",
        &format!("scale-in: {before} -> {after} nodes"),
    );

    // 6b. Drift by a change in Terraform.
    config.generation = 2;
    tf.write(&config);
    block_in_place(|| tf.run(&["apply"]));
    let want_after: BTreeMap<String, u32> =
        [("web".to_string(), 2), ("batch".to_string(), want["batch"])].into();
    eventually_within(
        Duration::from_secs(180),
        "karpenter-controller: every general node replaced by one of generation 2",
        || async {
            let pools = claims_by_pool(&claims).await;
            let general = pools.get("general").cloned().unwrap_or_default();
            let renewed = !general.is_empty()
                && general.iter().all(|c| {
                    c.metadata.labels.as_ref().and_then(|l| l.get("generation"))
                        == Some(&"2".to_string())
                });
            renewed && running_by_app(&pods).await == want_after
        },
    )
    .await;
    steps.done(
        "terraform apply, karpenter-controller",
        "drift: karpenter_nodepool general changed, its nodes replaced, pods Running",
    );

    // 7. Teardown: the application teams' objects first (a PodDisruptionBudget
    // would hold the last node's drain for ever once no NodePool is left to
    // replace it), then the bootstrap while the controller runs, then Terraform.
    block_in_place(|| cluster.kubectl(&kubectl, &["delete", "-f", &manifests_arg]));
    block_in_place(|| {
        let mut args = vec!["destroy"];
        args.extend(target);
        args.extend(["--drain-timeout", "3m"]);
        run(
            "karpenter-bootstrap",
            &bins.bootstrap,
            &args,
            &bootstrap_env,
        )
    });
    drop(controller);
    drop(agents);
    steps.done(
        "karpenter-bootstrap",
        "workloads deleted; destroy: NodePools drained, EC2NodeClass finalized, release, CRDs, queue, rules, EKS access removed",
    );
    // IAM, while Terraform's roles and policies still exist.
    let controller_key = credentials
        .iter()
        .find(|(k, _)| k == "AWS_ACCESS_KEY_ID")
        .map(|(_, v)| v.clone())
        .expect("the controller's access key");
    let evaluated = karpenter_e2e::iam::assert_controller_allowed(
        &account,
        &simulator,
        &controller_role,
        &node_role,
        &controller_key,
    )
    .await;
    steps.done(
        "iam-simulate",
        &format!(
            "{} requests karpenter-controller signed, allowed by its role's policies: {}",
            evaluated.requests,
            evaluated.summary()
        ),
    );
    block_in_place(|| tf.run(&["destroy"]));
    steps.done(
        "terraform destroy",
        "roles and what is left of the Kubernetes objects",
    );

    // Nothing the journey made is left.
    let live: Vec<(String, String)> = instance_states(&ec2)
        .await
        .into_iter()
        .filter(|(_, state)| state != "terminated")
        .collect();
    assert!(live.is_empty(), "instances left: {live:?}");
    let templates = ec2.describe_launch_templates().send().await.unwrap();
    assert!(
        templates.launch_templates().is_empty(),
        "launch templates left: {templates:?}"
    );
    let iam = aws_sdk_iam::Client::new(&account.config);
    let profiles = iam.list_instance_profiles().send().await.unwrap();
    assert!(
        profiles.instance_profiles().is_empty(),
        "instance profiles left: {profiles:?}"
    );
    let roles = iam.list_roles().send().await.unwrap();
    let role_names: Vec<&str> = roles.roles().iter().map(|r| r.role_name()).collect();
    assert!(role_names.is_empty(), "roles left: {role_names:?}");
    let queues = aws_sdk_sqs::Client::new(&account.config)
        .list_queues()
        .send()
        .await
        .unwrap();
    assert!(
        queues.queue_urls().is_empty(),
        "queues left: {:?}",
        queues.queue_urls()
    );
    let rules = events.list_rules().send().await.unwrap();
    assert!(rules.rules().is_empty(), "rules left: {:?}", rules.rules());
    let crds: Vec<String> = Api::<CustomResourceDefinition>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(crds.is_empty(), "CRDs left: {crds:?}");
    let releases: Vec<String> = Api::<Secret>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|s| s.type_.as_deref() == Some("helm.sh/release.v1"))
        .filter_map(|s| s.metadata.name)
        .collect();
    assert!(releases.is_empty(), "release Secrets left: {releases:?}");
    let nodes: Vec<String> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(nodes, ["system-a"], "Nodes left");
    let listed = block_in_place(|| cluster.helm_list(&helm, "kube-system"));
    assert!(listed.is_empty(), "helm list: {listed:?}");
    steps.done(
        "checks",
        "moto and kubesim hold nothing the journey made; helm list is empty",
    );
    say(&format!(
        "== the journey with Terraform {version}: {:.1} s",
        steps.total().as_secs_f64()
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

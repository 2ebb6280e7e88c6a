//! The provider block: how to reach the cluster, the way the kubernetes and
//! helm providers ask for it (a kubeconfig file and context, or host, token
//! and CA, or an exec credential plugin such as `aws eks get-token`), and
//! AWS (region, profile, a role to assume, an endpoint override).
//! Nothing here is used at plan time, so it may depend on values that are
//! unknown until apply (a cluster created in the same run).

use crate::cty::Type;
use crate::schema::{Attribute, Block, NestedBlock, Nesting, Presence};

/// The provider block's schema.
pub fn schema() -> Block {
    let string =
        |name, description| Attribute::new(name, Type::String, Presence::Optional, description);
    Block {
        attributes: vec![
            string(
                "config_path",
                "Path of a kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`).",
            ),
            string(
                "config_context",
                "The kubeconfig context to use (default: its current context).",
            ),
            string(
                "host",
                "The API server's URL; with `token` or `exec`, instead of a kubeconfig.",
            ),
            string("token", "A bearer token for `host`.").sensitive(),
            string(
                "cluster_ca_certificate",
                "PEM CA bundle that signed the API server's certificate.",
            ),
            string(
                "field_manager",
                "Server-side apply field manager (default `terraform-provider-karpenter`).",
            ),
            string(
                "region",
                "AWS region for the IAM resources (default: the AWS configuration's).",
            ),
            string("profile", "AWS shared-config profile."),
            string("assume_role_arn", "A role to assume for AWS calls."),
            string(
                "aws_endpoint_url",
                "Another AWS endpoint for every service (an emulator such as moto).",
            ),
        ],
        blocks: vec![NestedBlock {
            name: "exec",
            nesting: Nesting::Single,
            max_items: 0,
            block: Block {
                attributes: vec![
                    Attribute::new(
                        "api_version",
                        Type::String,
                        Presence::Required,
                        "The ExecCredential API version (`client.authentication.k8s.io/v1beta1`).",
                    ),
                    Attribute::new(
                        "command",
                        Type::String,
                        Presence::Required,
                        "The command (`aws`).",
                    ),
                    Attribute::new(
                        "args",
                        Type::List(Box::new(Type::String)),
                        Presence::Optional,
                        "Its arguments (`[\"eks\", \"get-token\", \"--cluster-name\", \"prod\"]`).",
                    ),
                    Attribute::new(
                        "env",
                        Type::Map(Box::new(Type::String)),
                        Presence::Optional,
                        "Extra environment variables.",
                    ),
                ],
                ..Block::default()
            },
        }],
        description: "Manages Karpenter NodePools and EC2NodeClasses through the Kubernetes API.",
    }
}

# Converted by karpenter-bootstrap convert from EC2NodeClass default, a stub
#   for v1alpha5 Provisioner default (v1alpha5-provisioner.yaml).
# TODO spec: the AWSNodeTemplate it names is not in the input, so this
#   EC2NodeClass is a stub: subnets and security groups are chosen by the tag
#   `karpenter.sh/discovery: CLUSTER_NAME`, AMIs by the alias al2023@latest
#   (v1alpha5 defaulted to AL2: use al2@latest to keep it, on EKS before
#   1.33); convert the AWSNodeTemplate too, or check each of these
# TODO spec.role: no instance profile in the input (v1alpha5 used the
#   `aws.defaultInstanceProfile` setting): `role:
#   KarpenterNodeRole-CLUSTER_NAME` is written, the bootstrap's default node
#   role; set the node role your nodes use, or `instanceProfile`
resource "karpenter_ec2nodeclass" "default" {
  name = "default"
  role = "KarpenterNodeRole-CLUSTER_NAME"
  ami_selector_term {
    alias = "al2023@latest"
  }
  security_group_selector_term {
    tags = {
      "karpenter.sh/discovery" = "CLUSTER_NAME"
    }
  }
  subnet_selector_term {
    tags = {
      "karpenter.sh/discovery" = "CLUSTER_NAME"
    }
  }
}

import {
  to = karpenter_ec2nodeclass.default
  id = "default"
}

# Converted by karpenter-bootstrap convert from v1alpha5 Provisioner default
#   (v1alpha5-provisioner.yaml).
resource "karpenter_nodepool" "default" {
  name = "default"
  limits = {
    "cpu" = "1000"
  }
  disruption {
    consolidate_after    = "Never"
    consolidation_policy = "WhenEmpty"
  }
  template {
    spec {
      expire_after = "Never"
      node_class_ref {
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = karpenter_ec2nodeclass.default.name
      }
      requirement {
        key      = "node.kubernetes.io/instance-type"
        operator = "In"
        values   = ["m5.large", "m5.xlarge"]
      }
      requirement {
        key      = "kubernetes.io/os"
        operator = "In"
        values   = ["linux"]
      }
      requirement {
        key      = "kubernetes.io/arch"
        operator = "In"
        values   = ["amd64"]
      }
      requirement {
        key      = "karpenter.sh/capacity-type"
        operator = "In"
        values   = ["on-demand"]
      }
    }
  }
}

import {
  to = karpenter_nodepool.default
  id = "default"
}


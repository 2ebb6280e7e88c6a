# Converted by karpenter-bootstrap convert from v1alpha1 AWSNodeTemplate
#   general (v1alpha5-full.yaml).
# The object's own labels (team) are not managed by this resource; keep them
#   with kubectl if they matter.
resource "karpenter_ec2nodeclass" "general" {
  name = "general"
  detailed_monitoring = true
  instance_profile    = "KarpenterNodeInstanceProfile-prod"
  tags = {
    "cost-center" = "1234"
    "team"        = "platform"
  }
  user_data = <<EOT
[settings.kubernetes]
max-pods = 110
EOT
  ami_selector_term {
    alias = "bottlerocket@latest"
  }
  block_device_mapping {
    device_name = "/dev/xvda"
    ebs {
      delete_on_termination = true
      encrypted             = true
      volume_size           = "4Gi"
      volume_type           = "gp3"
    }
  }
  block_device_mapping {
    device_name = "/dev/xvdb"
    ebs {
      encrypted   = true
      iops        = 4000
      kms_key_id  = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
      snapshot_id = "snap-0123456789abcdef0"
      throughput  = 250
      volume_size = "100Gi"
      volume_type = "gp3"
    }
  }
  kubelet {
    cluster_dns   = ["10.100.0.10"]
    cpu_cfs_quota = true
    eviction_hard = {
      "memory.available" = "5%"
      "nodefs.available" = "10%"
    }
    eviction_max_pod_grace_period = 60
    eviction_soft = {
      "memory.available" = "500Mi"
    }
    eviction_soft_grace_period = {
      "memory.available" = "1m"
    }
    image_gc_high_threshold_percent = 85
    image_gc_low_threshold_percent  = 80
    kube_reserved = {
      "cpu"               = "200m"
      "ephemeral-storage" = "3Gi"
      "memory"            = "100Mi"
    }
    max_pods      = 110
    pods_per_core = 4
    system_reserved = {
      "cpu"               = "100m"
      "ephemeral-storage" = "1Gi"
      "memory"            = "100Mi"
    }
  }
  metadata_options {
    http_endpoint               = "enabled"
    http_protocol_ipv6          = "disabled"
    http_put_response_hop_limit = 2
    http_tokens                 = "required"
  }
  security_group_selector_term {
    id = "sg-0123456789abcdef0"
  }
  security_group_selector_term {
    id = "sg-0fedcba987654321f"
  }
  subnet_selector_term {
    tags = {
      "karpenter.sh/discovery" = "prod"
    }
  }
}

import {
  to = karpenter_ec2nodeclass.general
  id = "general"
}

# Converted by karpenter-bootstrap convert from v1alpha1 AWSNodeTemplate
#   legacy (v1alpha5-full.yaml).
# TODO spec.amiFamily: v1 has no Ubuntu family: al2023@latest is written;
#   choose amiSelectorTerms (with amiFamily Custom and a userData that joins
#   the cluster) or keep AL2023
# TODO spec.launchTemplate: v1 launches without a launch template of yours:
#   move its AMI (amiSelectorTerms), user data, security groups and block
#   devices into this EC2NodeClass
# TODO spec.spotAllocationStrategy: has no v1 equivalent and was left out;
#   remove it, or say what it was for in the EC2NodeClass or NodePool by hand
resource "karpenter_ec2nodeclass" "legacy" {
  name = "legacy"
  context          = "cr-0123456789abcdef0"
  instance_profile = "KarpenterNodeInstanceProfile-prod"
  ami_selector_term {
    alias = "al2023@latest"
  }
  security_group_selector_term {
    tags = {
      "karpenter.sh/discovery" = "prod"
    }
  }
  subnet_selector_term {
    tags = {
      "karpenter.sh/discovery" = "prod"
    }
  }
}

import {
  to = karpenter_ec2nodeclass.legacy
  id = "legacy"
}

# Converted by karpenter-bootstrap convert from v1alpha5 Provisioner batch
#   (v1alpha5-full.yaml).
resource "karpenter_ec2nodeclass" "batch" {
  name = "batch"
  ami_family       = "AL2"
  instance_profile = "KarpenterNodeInstanceProfile-prod"
  ami_selector_term {
    name  = "my-ami-*"
    owner = "self"
  }
  ami_selector_term {
    name  = "my-ami-*"
    owner = "123456789012"
  }
  security_group_selector_term {
    tags = {
      "karpenter.sh/discovery" = "prod"
    }
  }
  subnet_selector_term {
    id = "subnet-0123456789abcdef0"
  }
  subnet_selector_term {
    id = "subnet-0fedcba987654321f"
  }
}

import {
  to = karpenter_ec2nodeclass.batch
  id = "batch"
}

# Converted by karpenter-bootstrap convert from v1alpha1 AWSNodeTemplate
#   general (v1alpha5-full.yaml).
# The object's own labels (team) are not managed by this resource; keep them
#   with kubectl if they matter.
resource "karpenter_ec2nodeclass" "general-general-small" {
  name = "general-general-small"
  detailed_monitoring = true
  instance_profile    = "KarpenterNodeInstanceProfile-prod"
  tags = {
    "cost-center" = "1234"
    "team"        = "platform"
  }
  user_data = <<EOT
[settings.kubernetes]
max-pods = 110
EOT
  ami_selector_term {
    alias = "bottlerocket@latest"
  }
  block_device_mapping {
    device_name = "/dev/xvda"
    ebs {
      delete_on_termination = true
      encrypted             = true
      volume_size           = "4Gi"
      volume_type           = "gp3"
    }
  }
  block_device_mapping {
    device_name = "/dev/xvdb"
    ebs {
      encrypted   = true
      iops        = 4000
      kms_key_id  = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
      snapshot_id = "snap-0123456789abcdef0"
      throughput  = 250
      volume_size = "100Gi"
      volume_type = "gp3"
    }
  }
  kubelet {
    max_pods = 58
  }
  metadata_options {
    http_endpoint               = "enabled"
    http_protocol_ipv6          = "disabled"
    http_put_response_hop_limit = 2
    http_tokens                 = "required"
  }
  security_group_selector_term {
    id = "sg-0123456789abcdef0"
  }
  security_group_selector_term {
    id = "sg-0fedcba987654321f"
  }
  subnet_selector_term {
    tags = {
      "karpenter.sh/discovery" = "prod"
    }
  }
}

import {
  to = karpenter_ec2nodeclass.general-general-small
  id = "general-general-small"
}

# Converted by karpenter-bootstrap convert from v1alpha5 Provisioner general
#   (v1alpha5-full.yaml).
resource "karpenter_nodepool" "general" {
  name = "general"
  limits = {
    "cpu"    = "1000"
    "memory" = "1000Gi"
  }
  weight = 10
  disruption {
    consolidate_after    = "30s"
    consolidation_policy = "WhenEmpty"
  }
  template {
    metadata {
      annotations = {
        "example.com/owner"           = "platform"
        "karpenter.sh/do-not-disrupt" = "true"
      }
      labels = {
        "team" = "platform"
      }
    }
    spec {
      expire_after = "720h"
      node_class_ref {
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = karpenter_ec2nodeclass.general.name
      }
      requirement {
        key      = "karpenter.k8s.aws/instance-category"
        operator = "In"
        values   = ["c", "m", "r"]
      }
      requirement {
        key      = "karpenter.sh/capacity-type"
        operator = "In"
        values   = ["spot", "on-demand"]
      }
      requirement {
        key      = "topology.kubernetes.io/zone"
        operator = "In"
        values   = ["us-east-1a", "us-east-1b"]
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
      startup_taint {
        effect = "NoExecute"
        key    = "node.cilium.io/agent-not-ready"
        value  = "true"
      }
      taint {
        effect = "NoSchedule"
        key    = "dedicated"
        value  = "general"
      }
    }
  }
}

import {
  to = karpenter_nodepool.general
  id = "general"
}

# Converted by karpenter-bootstrap convert from v1alpha5 Provisioner
#   general-small (v1alpha5-full.yaml).
resource "karpenter_nodepool" "general-small" {
  name = "general-small"
  template {
    spec {
      expire_after = "Never"
      node_class_ref {
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = karpenter_ec2nodeclass.general-general-small.name
      }
      requirement {
        key      = "karpenter.k8s.aws/instance-size"
        operator = "In"
        values   = ["large", "xlarge"]
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
      requirement {
        key      = "karpenter.k8s.aws/instance-category"
        operator = "In"
        values   = ["c", "m", "r"]
      }
      requirement {
        key      = "karpenter.k8s.aws/instance-generation"
        operator = "Gt"
        values   = ["2"]
      }
    }
  }
}

import {
  to = karpenter_nodepool.general-small
  id = "general-small"
}

# Converted by karpenter-bootstrap convert from v1alpha5 Provisioner batch
#   (v1alpha5-full.yaml).
resource "karpenter_nodepool" "batch" {
  name = "batch"
  template {
    spec {
      expire_after = "Never"
      node_class_ref {
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = karpenter_ec2nodeclass.batch.name
      }
      requirement {
        key      = "kubernetes.io/arch"
        operator = "In"
        values   = ["arm64"]
      }
      requirement {
        key      = "kubernetes.io/os"
        operator = "In"
        values   = ["linux"]
      }
      requirement {
        key      = "karpenter.sh/capacity-type"
        operator = "In"
        values   = ["on-demand"]
      }
      requirement {
        key      = "karpenter.k8s.aws/instance-category"
        operator = "In"
        values   = ["c", "m", "r"]
      }
      requirement {
        key      = "karpenter.k8s.aws/instance-generation"
        operator = "Gt"
        values   = ["2"]
      }
    }
  }
}

import {
  to = karpenter_nodepool.batch
  id = "batch"
}

# Converted by karpenter-bootstrap convert from v1alpha5 Provisioner legacy
#   (v1alpha5-full.yaml).
# TODO spec.kubeletConfiguration.containerRuntime: "dockerd" is not available
#   in v1 (containerd only); left out: check that your workloads run on
#   containerd
resource "karpenter_nodepool" "legacy" {
  name = "legacy"
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
        name  = karpenter_ec2nodeclass.legacy.name
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
      requirement {
        key      = "karpenter.k8s.aws/instance-category"
        operator = "In"
        values   = ["c", "m", "r"]
      }
      requirement {
        key      = "karpenter.k8s.aws/instance-generation"
        operator = "Gt"
        values   = ["2"]
      }
    }
  }
}

import {
  to = karpenter_nodepool.legacy
  id = "legacy"
}


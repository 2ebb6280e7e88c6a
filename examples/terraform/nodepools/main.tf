# A default EC2NodeClass and two NodePools: general purpose (spot first) and
# arm64 on-demand, with a maintenance window for disruption.
terraform {
  required_providers {
    karpenter = { source = "karpenter-rs/karpenter" }
  }
}

variable "kubeconfig" {
  description = "The kubeconfig of the cluster."
  type        = string
}

provider "karpenter" {
  config_path = var.kubeconfig
}

resource "karpenter_ec2nodeclass" "default" {
  name = "default"
  role = "KarpenterNodeRole-demo"
  ami_selector_term {
    alias = "al2023@latest"
  }
  subnet_selector_term {
    tags = { "karpenter.sh/discovery" = "demo" }
  }
  security_group_selector_term {
    tags = { "karpenter.sh/discovery" = "demo" }
  }
}

resource "karpenter_nodepool" "general" {
  name = "general"
  template {
    spec {
      node_class_ref {
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = karpenter_ec2nodeclass.default.name
      }
      requirement {
        key      = "karpenter.sh/capacity-type"
        operator = "In"
        values   = ["spot", "on-demand"]
      }
      requirement {
        key      = "karpenter.k8s.aws/instance-category"
        operator = "In"
        values   = ["c", "m", "r"]
      }
    }
  }
  limits = { cpu = "1000" }
}

resource "karpenter_nodepool" "arm64" {
  name   = "arm64"
  weight = 10
  template {
    spec {
      node_class_ref {
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = karpenter_ec2nodeclass.default.name
      }
      requirement {
        key      = "kubernetes.io/arch"
        operator = "In"
        values   = ["arm64"]
      }
      requirement {
        key      = "karpenter.sh/capacity-type"
        operator = "In"
        values   = ["on-demand"]
      }
    }
  }
  disruption {
    consolidation_policy = "WhenEmpty"
    consolidate_after    = "5m"
    budget {
      nodes = "20%"
    }
    budget {
      nodes    = "0"
      schedule = "0 9 * * mon-fri"
      duration = "8h"
    }
  }
}

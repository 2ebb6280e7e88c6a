# The module in terraform/karpenter with two pools.
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

module "karpenter" {
  source         = "../../../terraform/karpenter"
  cluster_name   = "demo"
  node_role_name = "KarpenterNodeRole-demo"
  nodepools = {
    default = {}
    gpu = {
      instance_categories = ["g", "p"]
      capacity_types      = ["on-demand"]
      taints              = [{ key = "nvidia.com/gpu", effect = "NoSchedule" }]
      weight              = 10
    }
  }
}

output "nodepools" {
  value = module.karpenter.nodepool_names
}

# The cheapest Graviton types with at most 4 vCPUs, from the provider's
# catalog (no cluster needed).
terraform {
  required_providers {
    karpenter = { source = "karpenter-rs/karpenter" }
  }
}

variable "kubeconfig" {
  description = "Unused here: data sources of the catalog need no cluster."
  type        = string
  default     = ""
}

provider "karpenter" {}

data "karpenter_instance_types" "small_arm" {
  requirement {
    key      = "kubernetes.io/arch"
    operator = "In"
    values   = ["arm64"]
  }
  requirement {
    key      = "karpenter.k8s.aws/instance-cpu"
    operator = "Lt"
    values   = ["5"]
  }
  max_results = 5
}

output "cheapest_arm" {
  value = data.karpenter_instance_types.small_arm.names
}

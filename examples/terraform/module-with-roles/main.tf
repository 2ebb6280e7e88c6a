# The module creating the node and controller IAM roles too (IRSA here),
# with one NodePool. AWS comes from the usual environment; the tests point
# aws_endpoint_url at an emulator.
terraform {
  required_providers {
    karpenter = { source = "karpenter-rs/karpenter" }
  }
}

variable "kubeconfig" {
  description = "The kubeconfig of the cluster."
  type        = string
}

variable "aws_endpoint_url" {
  description = "Another AWS endpoint (null: AWS itself)."
  type        = string
  default     = null
}

provider "karpenter" {
  config_path      = var.kubeconfig
  region           = "us-east-1"
  aws_endpoint_url = var.aws_endpoint_url
}

module "karpenter" {
  source                 = "../../../terraform/karpenter"
  cluster_name           = "demo"
  create_controller_role = true
  interruption_queue_arn = "arn:aws:sqs:us-east-1:123456789012:Karpenter-demo"
  irsa_oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/DEMO"
  nodepools = {
    default = {}
  }
}

output "controller_role_arn" {
  value = module.karpenter.controller_role_arn
}

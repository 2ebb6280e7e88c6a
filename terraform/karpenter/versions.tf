terraform {
  required_version = ">= 1.0"
  required_providers {
    karpenter = {
      source = "karpenter-rs/karpenter"
    }
  }
}

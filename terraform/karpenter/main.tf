resource "karpenter_ec2nodeclass" "this" {
  name = var.nodeclass_name
  role = var.node_role_name

  ami_selector_term {
    alias = var.ami_alias
  }
  subnet_selector_term {
    tags = { "karpenter.sh/discovery" = var.cluster_name }
  }
  security_group_selector_term {
    tags = { "karpenter.sh/discovery" = var.cluster_name }
  }
  block_device_mapping {
    device_name = "/dev/xvda"
    ebs {
      volume_size = var.root_volume_size
      volume_type = "gp3"
      encrypted   = true
    }
  }
  tags = var.tags
}

resource "karpenter_nodepool" "this" {
  for_each = var.nodepools

  name   = each.key
  weight = lookup(each.value, "weight", null)
  limits = { cpu = lookup(each.value, "cpu_limit", "1000") }

  template {
    metadata {
      labels = lookup(each.value, "labels", {})
    }
    spec {
      node_class_ref {
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = karpenter_ec2nodeclass.this.name
      }
      requirement {
        key      = "karpenter.sh/capacity-type"
        operator = "In"
        values   = lookup(each.value, "capacity_types", ["spot", "on-demand"])
      }
      requirement {
        key      = "kubernetes.io/arch"
        operator = "In"
        values   = lookup(each.value, "architectures", ["amd64"])
      }
      requirement {
        key      = "karpenter.k8s.aws/instance-category"
        operator = "In"
        values   = lookup(each.value, "instance_categories", ["c", "m", "r"])
      }
      dynamic "taint" {
        for_each = lookup(each.value, "taints", [])
        content {
          key    = taint.value.key
          value  = lookup(taint.value, "value", null)
          effect = taint.value.effect
        }
      }
    }
  }

  disruption {
    consolidate_after = lookup(each.value, "consolidate_after", "1m")
  }
}

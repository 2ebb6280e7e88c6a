locals {
  node_role_name = var.node_role_name != null ? var.node_role_name : karpenter_node_role.this[0].name
}

resource "karpenter_node_role" "this" {
  count = var.node_role_name == null ? 1 : 0

  name                    = "KarpenterNodeRole-${var.cluster_name}"
  create_instance_profile = false
  tags                    = var.tags
}

resource "karpenter_controller_role" "this" {
  count = var.create_controller_role ? 1 : 0

  name                   = "KarpenterController-${var.cluster_name}"
  cluster_name           = var.cluster_name
  node_role_arn          = var.node_role_name != null ? var.node_role_arn : karpenter_node_role.this[0].arn
  interruption_queue_arn = var.interruption_queue_arn
  irsa_oidc_provider_arn = var.irsa_oidc_provider_arn
  tags                   = var.tags
}

resource "karpenter_ec2nodeclass" "this" {
  name = var.nodeclass_name
  role = local.node_role_name

  ami_family = var.ami_id != null ? var.ami_family : null
  ami_selector_term {
    alias = var.ami_id == null ? var.ami_alias : null
    id    = var.ami_id
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

# Converted by karpenter-bootstrap convert from v1beta1 EC2NodeClass default
#   (v1beta1.yaml).
resource "karpenter_ec2nodeclass" "default" {
  name = "default"
  associate_public_ip_address = false
  instance_store_policy       = "RAID0"
  role                        = "KarpenterNodeRole-prod"
  tags = {
    "team" = "platform"
  }
  ami_selector_term {
    alias = "al2023@latest"
  }
  block_device_mapping {
    device_name = "/dev/xvda"
    ebs {
      encrypted   = true
      volume_size = "50Gi"
      volume_type = "gp3"
    }
  }
  kubelet {
    max_pods = 110
    system_reserved = {
      "cpu" = "100m"
    }
  }
  security_group_selector_term {
    tags = {
      "karpenter.sh/discovery" = "prod"
    }
  }
  security_group_selector_term {
    name = "eks-cluster-sg-prod"
  }
  subnet_selector_term {
    tags = {
      "karpenter.sh/discovery" = "prod"
    }
  }
}

import {
  to = karpenter_ec2nodeclass.default
  id = "default"
}

# Converted by karpenter-bootstrap convert from v1beta1 EC2NodeClass pinned
#   (v1beta1.yaml).
resource "karpenter_ec2nodeclass" "pinned" {
  name = "pinned"
  ami_family          = "AL2"
  detailed_monitoring = true
  instance_profile    = "KarpenterNodeInstanceProfile-prod"
  user_data = <<EOT
#!/bin/bash
echo "$${HOSTNAME} joins" >> /var/log/joins
EOT
  ami_selector_term {
    id = "ami-0123456789abcdef0"
  }
  ami_selector_term {
    owner = "self"
    tags = {
      "team" = "platform"
    }
  }
  security_group_selector_term {
    id = "sg-0123456789abcdef0"
  }
  subnet_selector_term {
    id = "subnet-0123456789abcdef0"
  }
}

import {
  to = karpenter_ec2nodeclass.pinned
  id = "pinned"
}

# Converted by karpenter-bootstrap convert from v1beta1 NodePool default
#   (v1beta1.yaml).
resource "karpenter_nodepool" "default" {
  name = "default"
  limits = {
    "cpu"    = "2000"
    "memory" = "4000Gi"
  }
  weight = 50
  disruption {
    consolidate_after    = "0s"
    consolidation_policy = "WhenEmptyOrUnderutilized"
    budget {
      nodes = "10%"
    }
    budget {
      duration = "8h"
      nodes    = "0"
      schedule = "0 9 * * 1-5"
    }
  }
  template {
    metadata {
      labels = {
        "team" = "platform"
      }
    }
    spec {
      expire_after = "168h"
      node_class_ref {
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = karpenter_ec2nodeclass.default.name
      }
      requirement {
        key        = "karpenter.k8s.aws/instance-family"
        min_values = 2
        operator   = "In"
        values     = ["m6i", "m7i", "c7i"]
      }
      requirement {
        key      = "karpenter.sh/capacity-type"
        operator = "In"
        values   = ["spot"]
      }
    }
  }
}

import {
  to = karpenter_nodepool.default
  id = "default"
}

# Converted by karpenter-bootstrap convert from v1beta1 NodePool steady
#   (v1beta1.yaml).
resource "karpenter_nodepool" "steady" {
  name = "steady"
  disruption {
    consolidate_after    = "5m"
    consolidation_policy = "WhenEmpty"
  }
  template {
    spec {
      node_class_ref {
        group = "karpenter.k8s.aws"
        kind  = "EC2NodeClass"
        name  = karpenter_ec2nodeclass.pinned.name
      }
      requirement {
        key      = "karpenter.sh/capacity-type"
        operator = "In"
        values   = ["on-demand"]
      }
      taint {
        effect = "NoSchedule"
        key    = "steady"
      }
    }
  }
}

import {
  to = karpenter_nodepool.steady
  id = "steady"
}


variable "cluster_name" {
  description = "The EKS cluster's name: the discovery tag value of its subnets and security groups."
  type        = string
}

variable "node_role_name" {
  description = "An existing IAM role for the nodes; when null the module creates `KarpenterNodeRole-<cluster>`."
  type        = string
  default     = null
}

variable "node_role_arn" {
  description = "The ARN of `node_role_name`, when the module creates the controller role for an existing node role."
  type        = string
  default     = null
}

variable "create_controller_role" {
  description = "Create the controller's IAM role (`KarpenterController-<cluster>`, EKS Pod Identity trust unless `irsa_oidc_provider_arn` is set)."
  type        = bool
  default     = false
}

variable "interruption_queue_arn" {
  description = "The interruption queue the controller reads (for its policy)."
  type        = string
  default     = null
}

variable "irsa_oidc_provider_arn" {
  description = "Use IRSA through this OIDC provider for the controller role."
  type        = string
  default     = null
}

variable "nodeclass_name" {
  description = "The name of the EC2NodeClass every pool uses."
  type        = string
  default     = "default"
}

variable "ami_alias" {
  description = "The AMI alias (`al2023@latest`, `bottlerocket@latest`)."
  type        = string
  default     = "al2023@latest"
}

variable "ami_id" {
  description = <<-EOT
    Pin one AMI by id instead of following `ami_alias` (for accounts that
    build their own images, or to hold a version). With it, `ami_family`
    says how its user data is written.
  EOT
  type        = string
  default     = null
}

variable "ami_family" {
  description = "The family of `ami_id`'s image (`AL2023`, `Bottlerocket`, `AL2`); used only with `ami_id`."
  type        = string
  default     = "AL2023"
}

variable "root_volume_size" {
  description = "The root volume's size."
  type        = string
  default     = "20Gi"
}

variable "tags" {
  description = "Tags on every instance and volume Karpenter launches."
  type        = map(string)
  default     = {}
}

variable "nodepools" {
  description = <<-EOT
    NodePools by name. Each may set: capacity_types (list, default spot and
    on-demand), architectures (list, default amd64), instance_categories
    (list, default c, m, r), cpu_limit (string, default "1000"), weight
    (number), consolidate_after (string, default "1m"), labels (map),
    taints (list of {key, value, effect}).
  EOT
  type        = any
  default = {
    default = {}
  }
}

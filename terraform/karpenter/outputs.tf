output "nodeclass_name" {
  description = "The EC2NodeClass's name."
  value       = karpenter_ec2nodeclass.this.name
}

output "nodepool_names" {
  description = "The NodePools' names."
  value       = [for pool in karpenter_nodepool.this : pool.name]
}

output "node_role_name" {
  description = "The node role's name (created here or given)."
  value       = local.node_role_name
}

output "controller_role_arn" {
  description = "The controller role's ARN, when the module created it."
  value       = var.create_controller_role ? karpenter_controller_role.this[0].arn : null
}

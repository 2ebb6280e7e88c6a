output "nodeclass_name" {
  description = "The EC2NodeClass's name."
  value       = karpenter_ec2nodeclass.this.name
}

output "nodepool_names" {
  description = "The NodePools' names."
  value       = [for pool in karpenter_nodepool.this : pool.name]
}

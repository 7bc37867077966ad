output "role_arn" {
  description = "ARN of the role the responder assumes in this account."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the role (the root module's member_role_name)."
  value       = aws_iam_role.this.name
}

output "release_role_arn" {
  description = "Role the operators in operator_role_arns assume to release this account's instances (null without operators)."
  value       = one(aws_iam_role.release[*].arn)
}

output "responder_trust_by" {
  description = "How the role's trust policy names the responder roles: \"names\" (each as a principal), or \"patterns\" when they are too many for IAM's trust-policy size (their accounts, the roles <prefix>-<region> of the listed regions carrying the deployment's tag)."
  value       = local.responder_trust_by
}

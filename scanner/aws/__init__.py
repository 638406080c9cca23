"""AWS: verify found key pairs with STS (verify.py), remediate live keys through IAM
(remediate.py), with every action written to an audit log (audit.py). Nothing here runs
unless the user asks for --verify, --remediate or revoke."""

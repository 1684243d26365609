-- acl_effective_access: what the ACL source `acl` offers as acl.effective_access (see schemas/acl_effective_access.toml).
SELECT * FROM acl.effective_access

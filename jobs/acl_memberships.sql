-- acl_memberships: what the ACL source `acl` offers as acl.memberships (see schemas/acl_memberships.toml).
SELECT * FROM acl.memberships

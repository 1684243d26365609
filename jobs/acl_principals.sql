-- acl_principals: what the ACL source `acl` offers as acl.principals (see schemas/acl_principals.toml).
SELECT * FROM acl.principals

-- acl_shares: what the ACL source `acl` offers as acl.shares (see schemas/acl_shares.toml).
SELECT * FROM acl.shares

-- The permission-audit rules over this run's acl_entries, one finding per row.
-- Each rule is one SELECT below; add a rule by adding a SELECT with the same
-- columns. Principals match by SID and by name, without case: acl_entries gives
-- principal_sid for every well-known principal ONTAP names (Everyone → S-1-1-0)
-- and principal_kind for NTFS, NFSv4 and POSIX entries alike (POSIX "other" and
-- NFSv4 EVERYONE@ are kind 'everyone'). has_any(list, 'a,b') (naslake-udfs) says
-- whether a list of rights holds any of the names. The last three rules read who
-- can actually reach what: acl_effective_access and acl_shares (README, "Who can
-- reach what").
WITH e AS (
  SELECT *,
    -- Rule 1's broad principals: everyone, any authenticated or anonymous user,
    -- every domain user, the local Users and Guests.
    entry_type = 'allow' AND (
         principal_kind = 'everyone'
      OR principal_sid IN ('S-1-1-0', 'S-1-5-11', 'S-1-5-7', 'S-1-5-32-545', 'S-1-5-32-546')
      OR regexp_like(principal_sid, '^S-1-5-21-[0-9]+-[0-9]+-[0-9]+-513$')
      OR lower(principal) IN ('everyone', 'everyone@', 'authenticated users', 'nt authority\authenticated users',
                              'anonymous logon', 'nt authority\anonymous logon', 'builtin\users', 'builtin\guests')
      OR ends_with(lower(principal), '\domain users')) AS broad,
    -- Who may change permissions and owners by role: administrators, SYSTEM,
    -- CREATOR OWNER, the object's owner (it always may), and POSIX root.
    coalesce(
         principal_kind = 'owner'
      OR principal_sid IN ('S-1-5-32-544', 'S-1-5-18', 'S-1-3-0', 'S-1-3-4')
      OR regexp_like(principal_sid, '^S-1-5-21-[0-9]+-[0-9]+-[0-9]+-(512|519)$')
      OR principal_sid = owner_sid
      OR lower(principal) = lower(owner)
      OR lower(principal) IN ('builtin\administrators', 'nt authority\system', 'system', 'creator owner',
                              'owner rights', 'root')
      OR ends_with(lower(principal), '\domain admins') OR ends_with(lower(principal), '\enterprise admins'),
      false) AS admin,
    has_any(advanced_rights, 'write_data,append_data,delete,delete_child,write_attr,write_ea,write_perm,write_owner') AS writes
  FROM acl_entries
),
-- One row per object (its first entry, or its only row when it has none).
objects AS (
  SELECT * FROM e WHERE entry_index IS NULL OR entry_index = 0
),
-- Effective access without a share (NTFS alone), with its object.
access AS (
  SELECT a.*, o.source, o.svm, o.object_type
  FROM acl_effective_access a
  JOIN objects o ON o.path = a.path AND o.volume = a.volume AND o.snapshot_date = a.snapshot_date
  WHERE a.share IS NULL
),
-- For each share entry that grants, every right any NTFS allow entry at or
-- below the share's folder grants (a null DACL grants every right).
share_reach AS (
  SELECT s.share, s.entry_index, s.principal, s.principal_sid, s.permission, s.access_mask, s.path, s.svm,
         s.snapshot_date, s.volume,
         bit_or(CASE WHEN o.dacl_present = false THEN 2031103 ELSE o.access_mask END) AS ntfs_mask
  FROM acl_shares s
  LEFT JOIN e o ON o.volume = s.volume AND o.snapshot_date = s.snapshot_date
       AND o.effective_style = 'ntfs' AND (o.entry_type = 'allow' OR o.dacl_present = false)
       AND (s.path = '/' OR o.path = s.path OR starts_with(o.path, concat(s.path, '/')))
  WHERE s.permission IN ('full_control', 'change', 'read')
  GROUP BY s.share, s.entry_index, s.principal, s.principal_sid, s.permission, s.access_mask, s.path, s.svm,
           s.snapshot_date, s.volume
)
SELECT 'broad_access' AS rule_id, CASE WHEN writes THEN 'high' ELSE 'medium' END AS severity,
       source, svm, path, object_type, principal, principal_sid, rights, advanced_rights, entry_index,
       concat(principal, ' (a broad principal) is allowed ', rights, ' on ', path,
              CASE WHEN writes THEN ': anyone in it can change or delete the data.'
                   ELSE ', a sensitive path: anyone in it can read the data.' END) AS explanation,
       snapshot_date, volume
FROM e
WHERE broad AND (writes OR (sensitive AND has_any(advanced_rights, 'read_data')))

UNION ALL
SELECT 'inheritance_broken', 'medium', source, svm, path, object_type, NULL, NULL, NULL, NULL, NULL,
       concat(path, ' does not inherit permissions from its parent (DACL protected, control flag 0x1000): changes made above it do not reach it.'),
       snapshot_date, volume
FROM objects WHERE dacl_protected

UNION ALL
SELECT 'null_dacl', 'high', source, svm, path, object_type, NULL, NULL, 'full_control', NULL, NULL,
       concat(path, ' has a null DACL (control flag 0x0004 not set on an NTFS object): everyone has full control.'),
       snapshot_date, volume
FROM objects WHERE effective_style = 'ntfs' AND dacl_present = false

UNION ALL
SELECT 'orphaned_sid', 'medium', source, svm, path, object_type, principal, principal_sid, rights, advanced_rights, entry_index,
       concat(principal, ' on ', path, ' resolves to no account (deleted or from an untrusted domain): nobody can tell who holds these rights.'),
       snapshot_date, volume
FROM e WHERE principal_resolved = false

UNION ALL
SELECT 'orphaned_sid', 'medium', source, svm, path, object_type, owner, owner_sid, NULL, NULL, NULL,
       concat('The owner of ', path, ', ', owner, ', resolves to no account: the owner can change its permissions, and nobody can tell who that is.'),
       snapshot_date, volume
FROM objects WHERE owner_resolved = false

UNION ALL
SELECT 'user_ace', 'low', source, svm, path, object_type, principal, principal_sid, rights, advanced_rights, entry_index,
       concat(principal, ' is granted ', rights, ' on ', path, ' by name rather than through a group: access that outlives a change of role.'),
       snapshot_date, volume
FROM e WHERE principal_kind = 'user' AND entry_type = 'allow' AND NOT inherited

UNION ALL
SELECT 'deny_ace', 'low', source, svm, path, object_type, principal, principal_sid, rights, advanced_rights, entry_index,
       concat(principal, ' is denied ', rights, ' on ', path, ': deny entries make effective access hard to reason about.'),
       snapshot_date, volume
FROM e WHERE entry_type = 'deny'

UNION ALL
SELECT 'permission_change', 'high', source, svm, path, object_type, principal, principal_sid, rights, advanced_rights, entry_index,
       concat(principal, ' can change the permissions or take ownership of ', path, ' (', rights, ') without being an administrator or its owner.'),
       snapshot_date, volume
FROM e
WHERE entry_type = 'allow' AND NOT admin
  AND (rights = 'full_control' OR has_any(advanced_rights, 'write_perm,write_owner'))

UNION ALL
-- The sticky bit protects a directory's entries; on a file it protects nothing.
SELECT 'world_writable', 'high', source, svm, path, object_type, 'other', NULL, NULL, NULL, NULL,
       concat(path, ' is writable by every user (mode ', mode_text, ')',
              CASE WHEN object_type = 'directory' THEN ' without the sticky bit: anyone can replace or delete its files.'
                   ELSE ': anyone can change it.' END),
       snapshot_date, volume
FROM objects
WHERE effective_style = 'unix' AND (mode & 2) <> 0
  AND (object_type = 'file' OR (object_type = 'directory' AND NOT sticky))

UNION ALL
SELECT 'setuid_setgid', 'medium', source, svm, path, object_type, owner, owner_sid, NULL, NULL, NULL,
       concat(path, ' runs with the rights of its ', CASE WHEN setuid THEN 'owner' ELSE 'group' END, ' (mode ', mode_text, '): a program that anyone who can run it can use to gain them.'),
       snapshot_date, volume
FROM objects
WHERE effective_style = 'unix' AND object_type = 'file' AND (setuid OR setgid)

UNION ALL
SELECT 'disabled_account_access', 'high', source, svm, path, object_type, user, user_sid, rights, NULL, NULL,
       concat('The disabled account ', user, ' still has ', rights, ' on ', path,
              ', a sensitive path: enabling it again, or anyone who can, reaches the data.'),
       snapshot_date, volume
FROM access WHERE account_disabled AND sensitive

UNION ALL
SELECT 'deep_nesting', 'low', source, svm, path, object_type, user, user_sid, rights, NULL, NULL,
       concat(user, ' has ', rights, ' on ', path, ' only through ', CAST(via_depth AS VARCHAR),
              ' levels of nested groups (acl_effective_access.via): access nobody sees in the group the entry names.'),
       snapshot_date, volume
FROM access WHERE via_depth >= 3

UNION ALL
SELECT 'share_wider_than_ntfs', 'low', 'ontap', svm, path, 'share', principal, principal_sid, permission, NULL, entry_index,
       concat('Share ', share, ' grants ', principal, ' ', permission, ' on ', path,
              ', more than any NTFS entry at or below it allows: the share''s permissions are not what protects the data.'),
       snapshot_date, volume
FROM share_reach WHERE (access_mask | coalesce(ntfs_mask, 0)) <> coalesce(ntfs_mask, 0)

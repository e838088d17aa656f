"""Every action the audit log records, with what it means: the one list that the operator's
audit page offers, docs/web.md explains, and tests/unit/test_audit_actions.py checks against
every call that writes one (`users.audit` refuses an action that is not here)."""

from __future__ import annotations

AUDIT_ACTIONS: dict[str, str] = {
    # An import's decisions (its page, the API) and downloads
    "approve": "a paused import approved (the result, the note)",
    "reject": "a paused import rejected (the note)",
    "fail": "an unfinished import ended by the operator (`imports fail`: the reason)",
    "undo": "an applied import undone, back to it (`imports undo`, its page: the result, the note)",
    "files_downloaded": "one of an import's five files downloaded as uploaded",
    # Setup
    "sftp_password": "the tenant's SFTP password rotated (never the password)",
    "emails": "the notification addresses replaced (the new list)",
    "thresholds": "the thresholds changed (each value, before → after)",
    "public_key_added": "an SSH public key added (type, fingerprint, comment)",
    "public_key_removed": "an SSH public key removed (type, fingerprint, comment)",
    "grade_rules": "the grade replace rules replaced (the rules, whether the common ones apply)",
    "pause_window_added": "a pause window added (its days, note, expected changes)",
    "pause_window_removed": "a pause window removed (its days, note)",
    "input_format": "the upload format changed: clever, oneroster or auto (before → after)",
    # Choose Files
    "upload_checked": "five files checked (their sizes, the problems, what would pause it)",
    "upload_refused": "an upload refused (the message)",
    "upload_processed": "a checked upload processed (the import's id)",
    "upload_discarded": "a checked upload discarded",
    # The operator's pages
    "tenant_added": "a tenant added (its addresses, never the password)",
    "tenant_disabled": "a tenant disabled",
    "tenant_enabled": "a tenant enabled",
    "user_disabled": "a user disabled",
    "user_enabled": "a user enabled",
    "email_retry": "an email sent again now (its id, kind, recipients)",
    # The operator's shell only (daemon/cliaudit.py)
    "tenant_settings": "`tenant set`: encoding, extra or secret columns (each value)",
    "allowed_networks": "`tenant set --allow-from`: the networks its logins come from",
    "bans_lifted": "`tenant unban`: the login bans lifted (whose)",
    "user_added": "`user add`: an account added (its name and role)",
    "password_set": "`user passwd`: a new password; sessions ended, API tokens revoked",
    # Accounts (the web and the operator's shell)
    "invitation_sent": "an invitation emailed (`user add --email`, `user invite`)",
    "password_link_sent": "a forgot-password link emailed",
    "password_set_by_link": "a password set through a one-time link",
    "token_created": "an API token created (its id, label)",
    "token_revoked": "an API token revoked (its id, label)",
    "totp_enrolled": "a second factor enrolled",
    "totp_removed": "a second factor removed",
    "user_removed": "a user removed (its name and role)",
}

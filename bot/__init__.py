"""migrate-bot: move Xen VMs from Slack with a checklist, approval and an audit trail."""

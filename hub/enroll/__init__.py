"""Agent enrollment: tokens, CSR signing, renewal, revocation and the audit log."""

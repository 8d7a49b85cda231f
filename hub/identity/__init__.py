"""Who an agent is: the CA (pki), enrollment tokens, CSR signing, renewal, revocation and the audit log."""

"""Exit codes: findings and errors are distinct, so CI never mistakes a broken run for a clean one."""

EXIT_CLEAN = 0  # nothing found
EXIT_FINDINGS = 1  # findings (after baseline and allowlists)
EXIT_USAGE = 2  # usage or configuration error
EXIT_FAILURE = 3  # any other failure

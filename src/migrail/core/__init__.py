"""What every part of migrail uses: the config, errors, the console, files, subprocesses,
signals, temporary directories, durations and URLs (parsed and masked)."""

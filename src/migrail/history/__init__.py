"""The migration history as files: revision files and their graph, names, sums and schema
snapshots, rebasing a branch's revisions, and what git has staged of them."""

"""The workbench's JSON API: one router per page (explore, queries, review, audiences, runs)."""

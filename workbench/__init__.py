"""The web workbench (`mokg serve`): explore the graph, review mined facts, build audiences, runs."""

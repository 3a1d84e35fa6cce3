"""Entry points: the CLI, the console, one-process runs and swarms of processes, status
views, scenarios and reports."""

"""Demo-mode shortcuts for the demo shop; registered only in demo mode."""

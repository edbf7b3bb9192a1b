"""A session: the runner that creates, resumes and runs it, its saved state and summary, its lock."""

"""The "Users report" pipeline: random users from the randomuser API saved as a CSV report."""

"""Business logic: prompt assembly, key selection and chat orchestration."""

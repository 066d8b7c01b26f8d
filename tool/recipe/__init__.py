"""The steps of tool/train_all.py: the options it forwards, the plan of the stages, what their
folders already hold, running a step, and the summary file."""

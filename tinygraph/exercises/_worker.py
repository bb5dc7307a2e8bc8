"""`python -m tinygraph.exercises._worker`: the fresh child process that runs one answer file (see sandbox.py)."""

from tinygraph.exercises.sandbox import worker_main

if __name__ == "__main__":
    worker_main()

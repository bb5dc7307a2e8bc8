"""Classroom exercises: write a backward pass by hand, get feedback that names what is missing.

    import tinygraph as tg
    print(tg.exercises.show("mean_triangle"))
    def mean_triangle(x, dout):
        return dout                      # only the direct path
    print(tg.exercises.check("mean_triangle", mean_triangle).feedback)

The package is split by concern, so a teacher reads only the first:

- `catalogue`: the exercises that ship, each one `register(...)` call;
- `definition`: what an exercise is, `register`, `show`;
- `sandbox`: running the student's code in a child process with time and memory limits;
- `feedback`: judging the answer against autograd and naming the mistake;
- `checker`: `check` (a function) and `check_file` (a file, as the CLI does);
- `grading`: a whole class of files at once, with table, JSON, CSV and Gradescope output.
"""

from . import catalogue  # noqa: F401 - registers the built-in exercises
from .checker import check, check_file
from .definition import EXERCISES, Exercise, Variant, get, names, register, show
from .feedback import Result
from .grading import grade, load_exercises

__all__ = ["Exercise", "Variant", "Result", "names", "show", "check", "check_file", "register", "grade",
           "load_exercises", "EXERCISES", "get"]

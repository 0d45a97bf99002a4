# The SDK from this repository on pytest's path (a project `roost new` made keeps its own
# copy in .roost/sdk instead).
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..", "..", "sdk-python")]

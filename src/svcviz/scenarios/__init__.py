"""The lecture's experiments, checked on real servers (`svcviz scenario`: command.py).

Kept empty: the dashboard's lesson checklist imports `probes` alone, and importing every
scenario with it cost its first frame ~22 ms.
"""

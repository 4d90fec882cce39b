"""The nightly pipeline simulated on a CPU over local commits (``sim.sh``), the changes it
plants (``plant``) and asv's record of its nights (``sim_asv``)."""

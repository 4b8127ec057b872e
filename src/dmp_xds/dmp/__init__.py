"""The French layer on XDS: the INS, the DMP's vocabulary and access policy (pure), the CI-SIS
rules, the CDA layer."""

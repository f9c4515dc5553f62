"""PACS over DICOMweb: import studies (QIDO-RS/WADO-RS via dicomweb-client) and write results back (STOW-RS of
highdicom SEG and SR objects). Torch-free, so the app may call it."""

"""PACS over DICOMweb: import studies (QIDO-RS/WADO-RS via dicomweb-client) and write results back (STOW-RS of
highdicom SEG and SR objects). Part of engine.data: torch-free, and an import source like a folder, so the
app calls it as it calls the file import."""

"""The book's figures: one small module per chapter, each function taking data or records and returning a matplotlib
``Figure``, so that a chapter's cell shows the question and the answer, not fifty lines of axis code.

Import the chapter's module where it is used (``from wavelab.report.plots import recurrent as recurrent_plots``);
nothing is imported here, so ``import wavelab`` does not pull in matplotlib.
"""

"""The report layer: everything the book shows is rendered here from results records, never typed by hand.

* :mod:`.records`: :class:`~.records.ResultRecord` (one evaluated figure with its provenance), ``load_records`` and
  ``select``, the one query, which reads only the records it is given.
* :mod:`.papers`: the papers' figures (``PAPER_BPF``, ``THESIS_LINEAR_BPF``), gathered from the models' config
  classes through the registry.
* :mod:`.tables`: :class:`~.tables.Table` and ``records_table``, the one way from records to a table.
* :mod:`.findings`: each chapter's measured answer; :mod:`.curves`: learning curves and power-law fits;
  :mod:`.studies`: the latent study on disk and as tables; :mod:`.speed`: timing helpers and speed tables.
* :mod:`.widgets`, :mod:`.listening`: players, the listening room, a chapter's listening section;
  :mod:`.plots`: the chapters' figures.

Nothing is imported here, so ``import wavelab.report`` pulls in neither matplotlib nor ipywidgets.
"""

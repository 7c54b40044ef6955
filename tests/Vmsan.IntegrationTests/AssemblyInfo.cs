// Real VMs under TCG share 2 cores: run one class at a time so boot deadlines stay meaningful.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
